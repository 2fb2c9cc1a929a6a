/**
 * The catalogue's shoe categories (shoe_db.models.CATEGORIES, kept equal by tests/unit/api/test_pages.py),
 * offered by the pages' category filters after their "all" option.
 */

export const CATEGORIES = ["walking", "running", "trail", "hiking", "ski", "cycling", "casual"];

export function fillCategories(select) {
  for (const category of CATEGORIES) select.append(new Option(category));
}
