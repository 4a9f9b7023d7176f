"""One journey through the real app in headless Chromium: Home, the demo catalog on Datasets, a batch on Prompts.
Grows with the product (training, generation, evaluation, review join it as they land)."""
import pytest

pytestmark = pytest.mark.browser


def _settle(page, timeout=60_000):
    """Wait until Streamlit has finished running the script (the running indicator is gone)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
    page.wait_for_timeout(300)


def _login(page, username="mia"):
    """Each page load is a new Streamlit session: sign in on the page's own form."""
    from workbench.review.testing import PASSWORD

    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    _settle(page)
    page.get_by_text("Signed in as").wait_for(timeout=30_000)


@pytest.fixture
def page(browser, artifacts, request):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    if getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed:
        page.screenshot(path=str(artifacts / f"failed-{request.node.name}.png"), full_page=True)
    page.close()


def test_journey_home_datasets_prompts(page, app_server, artifacts):
    from workbench.review.testing import make_users

    make_users()  # one account per role, in the served workspace
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(app_server)
    _settle(page)
    page.get_by_text("This workspace is empty").wait_for(timeout=60_000)
    page.get_by_text("This machine", exact=True).wait_for(timeout=60_000)
    _settle(page)
    page.screenshot(path=str(artifacts / "01-home-empty.png"), full_page=True)

    page.goto(f"{app_server}/Datasets")
    _settle(page)
    _login(page)
    page.get_by_role("button", name="Create the demo catalog").click(timeout=60_000)
    _settle(page, timeout=120_000)
    page.get_by_text("items match").wait_for(timeout=120_000)
    assert page.locator("[data-testid='stMetricValue']").first.inner_text().strip().isdigit()
    page.screenshot(path=str(artifacts / "02-datasets-demo.png"), full_page=True)

    page.goto(f"{app_server}/Prompts")
    _settle(page)
    _login(page)
    page.get_by_text("Tokens").first.wait_for(timeout=60_000)
    page.get_by_label("Batch name").fill("e2e batch")
    page.get_by_label("Batch name").press("Enter")
    _settle(page)
    page.get_by_role("button", name="Save to prompt library").click()
    _settle(page)
    page.get_by_text("Saved as batch").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "03-prompts-saved.png"), full_page=True)

    page.goto(app_server)
    _settle(page)
    page.get_by_text("This machine", exact=True).wait_for(timeout=60_000)
    metrics = page.locator("[data-testid='stMetric']").all_inner_texts()
    assert any(m.startswith("Datasets") and m.strip().endswith("1") for m in metrics), metrics
    page.screenshot(path=str(artifacts / "04-home-populated.png"), full_page=True)
    assert not errors, errors
