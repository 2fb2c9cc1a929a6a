/**
 * The catalogue's shoe categories (shoe_db.models.CATEGORIES, kept equal by tests/unit/api/test_pages.py), and the
 * options of the pages' category filters: "all" (no filter), then each category.
 */

export const CATEGORIES = ["walking", "running", "trail", "hiking", "ski", "cycling", "casual"];

export function fillCategories(select) {
  select.replaceChildren(new Option("all", ""), ...CATEGORIES.map((category) => new Option(category)));
}
