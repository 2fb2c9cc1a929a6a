"""Who am I: the cheapest authenticated route (the framework's floor in the load benchmark)."""

from fastapi import APIRouter, Depends

from api.access import access
from api.repository import Repository, stores
from api.schemas import Me

router = APIRouter(tags=["account"])


@router.get("/me", response_model=Me, summary="The calling key: tenant, store, scopes")
def me(repo: Repository = Depends(access(None))) -> Me:
    p, tenant = repo.principal, repo.tenant()
    return Me(key_id=p.key_id, tenant=tenant.name, store=stores.code_of(repo, p.store_id), scopes=sorted(p.scopes),
              retention_days=tenant.retention_days)
