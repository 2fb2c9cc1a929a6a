"""The pages' own copies of the catalogue's vocabulary agree with it (JavaScript cannot import Python)."""

import json
import re
from pathlib import Path

from shoe_db.models import CATEGORIES

WEB = Path(__file__).resolve().parents[3] / "api" / "web"


def test_the_pages_offer_the_catalogues_categories():
    source = (WEB / "shared" / "categories.js").read_text()
    listed = re.search(r"export const CATEGORIES = (\[.*?\]);", source, re.S).group(1)
    assert tuple(json.loads(listed)) == CATEGORIES
