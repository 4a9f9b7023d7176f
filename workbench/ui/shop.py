"""The Datasets page's shop import form (issue #22 item 1): crawl a shop as a job, optionally re-crawled daily, and
the shops crawled so far with their last crawl's counts and problems. Widget keys start with ``datasets_shop_``.
The library is ``workbench.products.shop`` (``start_shop_crawl``, ``list_shops``, ``stop_shop_crawl``)."""
from __future__ import annotations

import streamlit as st

from workbench.ui.common import code_span, plain

K_JOB = "datasets_shop_job"


def render_shop_import(user: str) -> None:
    """The form, the running crawl's job panel, and the list of shops."""
    from workbench.data.shop.crawler import CrawlError, CrawlOptions
    from workbench.products.shop import list_shops, start_shop_crawl, stop_shop_crawl

    with st.form("datasets_shop_form"):
        st.markdown("**Import from the brand's online shop**: reads robots.txt and obeys it, finds product pages "
                    "from the sitemap and the catalog pages, reads each product's schema.org data (SKU, name, brand, "
                    "colour, price) and imports its photos, linked to product records. A re-run downloads only what "
                    "changed; an interrupted crawl resumes.")
        url = st.text_input("Shop URL", key="datasets_shop_url", placeholder="https://shop.example/")
        name = st.text_input("Dataset name (default shop-<host>; an existing name adds to it)",
                             key="datasets_shop_dataset")
        c = st.columns(3)
        max_pages = c[0].number_input("Pages at most", 1, 1_000_000, 500, key="datasets_shop_max_pages")
        rate = c[1].number_input("Requests per second", 0.05, 10.0, 1.0, 0.25, key="datasets_shop_rate",
                                 help="Polite by default: one request a second (robots.txt Crawl-delay can slow it)")
        daily = c[2].checkbox("Re-crawl daily", key="datasets_shop_daily",
                              help="A job every 24 h while a worker runs; unticked removes the schedule")
        render = st.checkbox("Render JavaScript (headless Chromium, for shops that draw their pages in the browser)",
                             key="datasets_shop_render")
        submitted = st.form_submit_button("Crawl and import", type="primary")
    if submitted:
        try:
            options = CrawlOptions(max_pages=int(max_pages), rate=float(rate), render_js=bool(render))
            st.session_state[K_JOB] = start_shop_crawl(user, url.strip(), dataset=name.strip(), options=options,
                                                       daily=bool(daily))
        except (CrawlError, ValueError) as exc:
            st.error(plain(exc))
    if st.session_state.get(K_JOB):
        from workbench.ui.jobs import job_panel

        job_panel(st.session_state[K_JOB], key="datasets_shop_job_panel",
                  stop=lambda job_id: stop_shop_crawl(user, job_id))
    for shop in list_shops():
        c = shop.last_counts
        schedule = (f"re-crawled every {shop.schedule_hours} h, next {shop.next_crawl_at:%Y-%m-%d %H:%M} UTC"
                    if shop.schedule_hours else "not scheduled")
        with st.expander(f"{plain(shop.origin)} · dataset {plain(shop.dataset_name)} · {schedule}"):
            st.markdown(f"{shop.crawls} crawl(s); the last: **{plain(shop.last_status or '-')}**, "
                        f"{c.get('requests', 0)} requests, {c.get('downloaded', 0)} downloaded, "
                        f"{c.get('not_modified', 0)} not modified, {c.get('pages', 0)} pages, "
                        f"{c.get('images', 0)} images, {c.get('disallowed', 0)} disallowed by robots.txt")
            for p in shop.last_problems[:50]:
                st.markdown(f"- {code_span(p.get('url', ''))}: {plain(p.get('reason', ''))}")
