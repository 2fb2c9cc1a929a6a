"""The fit service: tenants, their stores and kiosks, API keys, customers, consent, passports, fit results,
feedback and the append-only audit log, on the catalogue's stores and sizes (0001).

Revision ID: api0001
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "api0001"
down_revision = "0001"
branch_labels = None
depends_on = None

_APPEND_ONLY = "the audit log is append-only"


def _id(name: str = "id") -> sa.Column:
    return sa.Column(name, sa.String(32), primary_key=True)


def _ref(name: str, target: str, type_=sa.Integer(), nullable: bool = False) -> sa.Column:
    return sa.Column(name, type_, sa.ForeignKey(target), nullable=nullable, index=True)


def upgrade() -> None:
    op.create_table(
        "tenant",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False, unique=True, index=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tenant_store",
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("store.id"), primary_key=True),
        _ref("tenant_id", "tenant.id"),
    )
    op.create_table(
        "kiosk",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("tenant_id", "tenant.id"),
        _ref("store_id", "store.id"),
        sa.Column("rig_serial", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(16), primary_key=True),
        _ref("tenant_id", "tenant.id"),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("store.id"), nullable=True),
        sa.Column("scopes", sa.String(400), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "customer",
        _id(),
        _ref("tenant_id", "tenant.id"),
        sa.Column("loyalty_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "loyalty_id"),
    )
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("customer_id", "customer.id", sa.String(32)),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(40), nullable=False),
    )
    op.create_table(
        "passport",
        _id(),
        _ref("tenant_id", "tenant.id"),
        _ref("customer_id", "customer.id", sa.String(32)),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("passport_json", sa.Text(), nullable=False),
        sa.Column("left_points", sa.LargeBinary(), nullable=False),
        sa.Column("right_points", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "fit_result",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("passport_id", "passport.id", sa.String(32)),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("request_json", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("passport_id", "passport.id", sa.String(32)),
        sa.Column("event", sa.String(12), nullable=False),
        sa.Column("size_id", sa.Integer(), sa.ForeignKey("size_variant.id"), nullable=False),
        sa.Column("reason", sa.String(12), nullable=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("store.id"), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(40), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        _ref("tenant_id", "tenant.id"),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("action", sa.String(12), nullable=False),
        sa.Column("object_type", sa.String(12), nullable=False),
        sa.Column("object_id", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
                   f"'{_APPEND_ONLY}'; END $$ LANGUAGE plpgsql")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END")


def downgrade() -> None:
    for table in ("audit_log", "feedback", "fit_result", "passport", "consent", "customer", "api_key", "kiosk",
                  "tenant_store", "tenant"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_append_only()")
