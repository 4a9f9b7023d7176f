"""Datasets page, Products tab: a grid of products (thumbnails, sku, name, colour swatch, price, link), filters, a
product's form (fields, photos, linked generations, LoRAs, "Train on this product") and merging. Keys start with
``datasets_products_``. Every edit is checked again by ``workbench.products`` (``datasets``; training ``train``)."""
from __future__ import annotations

import streamlit as st

from workbench import products
from workbench.ui.common import code_span, plain
from workbench.ui.state import StateKeys

K_OPEN = "datasets_products_open"
K_FLASH = "datasets_products_flash"
COLS = 4
PER_PAGE = 48


def _user() -> str:
    return st.session_state.get(StateKeys.USER, "")


def _flash(message: str) -> None:
    st.session_state[K_FLASH] = message


def products_view() -> None:
    """The tab: the open product's form above the grid, then merging."""
    if st.session_state.get(K_FLASH):
        st.success(plain(st.session_state.pop(K_FLASH)))
    total = products.count_products()
    if not total:
        st.info("**No products yet.** Import a source that names them (a Kaggle styles.csv, KREAM captions, a "
                "metadata.jsonl with a sku column, or one folder per product), or use `workbench products create`.")
        return
    sku = st.session_state.get(K_OPEN)
    if sku:
        try:
            product_detail(products.get_product(sku))
        except products.ProductError:
            st.session_state[K_OPEN] = None
    left, right = st.columns([2, 1])
    text = left.text_input("Search sku, name, colour, brand", key="datasets_products_text")
    category = right.selectbox("Category", ["", *products.categories()], key="datasets_products_category",
                               format_func=lambda c: c or "any")
    rows = products.list_products(text, category, limit=PER_PAGE)
    st.caption(f"{len(rows)} of {total} products" + (" (first 48 shown: narrow the search)" if len(rows) == PER_PAGE
                                                      else ""))
    grid(rows)
    merge_form()


def grid(rows: list[products.ProductInfo]) -> None:
    for start in range(0, len(rows), COLS):
        for col, p in zip(st.columns(COLS), rows[start:start + COLS]):
            with col.container(border=True):
                thumbs = [str(t) for t in p.thumbnails[:3] if t.is_file()]
                if thumbs:
                    st.image(thumbs, width=64)
                else:
                    st.caption("no photos")
                st.markdown(f"{code_span(p.sku)} **{plain(p.name) or '(no name)'}**")
                details = " · ".join(plain(x) for x in (p.category, p.colour, p.price_label) if x)
                if details:
                    st.caption(details)
                if p.swatch:
                    st.color_picker("measured colour", p.swatch, disabled=True, key=f"datasets_products_sw_{p.id}")
                if p.url:
                    st.link_button("Product page", p.url)  # http(s) only: checked when stored
                if st.button("Open", key=f"datasets_products_open_{p.id}"):
                    st.session_state[K_OPEN] = p.sku
                    st.rerun()


def product_detail(p: products.ProductInfo) -> None:
    with st.container(border=True):
        top, close = st.columns([5, 1])
        top.subheader(plain(f"{p.sku} · {p.name}" if p.name else p.sku), anchor=False)
        if close.button("Close", key="datasets_products_close"):
            st.session_state[K_OPEN] = None
            st.rerun()
        thumbs = [str(t) for t in p.thumbnails if t.is_file()]
        if thumbs:
            st.image(thumbs, width=96, caption=[f"#{i}" for i, t in zip(p.item_ids, p.thumbnails) if t.is_file()])
        edit_form(p)
        photos_form(p)
        links_panel(p)


def edit_form(p: products.ProductInfo) -> None:
    with st.form(f"datasets_products_form_{p.id}"):
        a, b = st.columns(2)
        values = {
            "name": a.text_input("Name", p.name, key="datasets_products_f_name"),
            "brand": b.text_input("Brand", p.brand, key="datasets_products_f_brand"),
            "category": a.text_input("Category", p.category, key="datasets_products_f_category"),
            "colour": b.text_input("Colour", p.colour, key="datasets_products_f_colour"),
            "price": a.text_input("Price", "" if p.price is None else f"{p.price:f}", key="datasets_products_f_price"),
            "currency": b.text_input("Currency (ISO 4217)", p.currency, key="datasets_products_f_currency"),
            "url": st.text_input("Product page (http/https)", p.url, key="datasets_products_f_url"),
        }
        if p.colour_lab:
            st.caption("Measured colour (Lab): " + ", ".join(f"{v:.1f}" for v in p.colour_lab))
        if st.form_submit_button("Save", type="primary"):
            try:
                products.update_product(_user(), p.sku, **values)
            except (products.ProductError, PermissionError) as exc:
                st.error(plain(exc))
            except Exception as exc:  # noqa: BLE001 - AuthError/PermissionDenied from the role check
                st.error(plain(exc))
            else:
                _flash(f"{p.sku} saved")
                st.rerun()


def photos_form(p: products.ProductInfo) -> None:
    a, b = st.columns(2)
    with a:
        ids = st.text_input("Link dataset items (ids, comma separated)", key="datasets_products_link_ids")
        move = st.checkbox("Take them from another product", key="datasets_products_link_move")
        if st.button("Link", key="datasets_products_link"):
            try:
                wanted = [int(x) for x in ids.replace(" ", ",").split(",") if x.strip()]
                products.link_items(_user(), p.sku, wanted, move=move)
            except ValueError as exc:
                st.error(plain(exc if isinstance(exc, products.ProductError) else f"item ids are numbers: {ids!r}"))
            except Exception as exc:  # noqa: BLE001 - the role check
                st.error(plain(exc))
            else:
                _flash(f"{p.sku}: items linked")
                st.rerun()
    with b:
        gone = st.multiselect("Unlink photos", p.item_ids, key="datasets_products_unlink_ids")
        if st.button("Unlink", key="datasets_products_unlink", disabled=not gone):
            try:
                products.unlink_items(_user(), p.sku, gone)
            except Exception as exc:  # noqa: BLE001 - the role check
                st.error(plain(exc))
            else:
                _flash(f"{p.sku}: {len(gone)} photo(s) unlinked")
                st.rerun()


def links_panel(p: products.ProductInfo) -> None:
    gens = products.generations_of_product(p.sku)
    loras = products.loras_for(p.sku)
    st.markdown(f"**Linked generations:** {len(gens)}" + (f" (ids {', '.join(map(str, gens[:20]))}"
                                                            f"{' …' if len(gens) > 20 else ''})" if gens else ""))
    if p.token:
        st.markdown(f"**Instance token:** {code_span(p.token)}")
    for link in loras[:5]:
        st.caption(f"run {link.run_id} ({plain(link.status)}): {plain(link.prompt)}"
                   + (" · LoRA ready" if link.lora_path else ""))
    if st.button("Train on this product", key="datasets_products_train", disabled=not p.item_ids,
                 help="A DreamBooth-LoRA run on its photos with its own token and prior preservation"):
        from workbench.products.training import start_product_run

        try:
            run_id = start_product_run(_user(), [p.sku])
        except Exception as exc:  # noqa: BLE001 - ProductError, ConfigError, RunError, the role check
            st.error(plain(exc))
        else:
            _flash(f"training run {run_id} queued for {p.sku}: follow it on the Training page")
            st.rerun()


def merge_form() -> None:
    with st.expander("Merge products"):
        skus = [p.sku for p in products.list_products(limit=2000)]
        chosen = st.multiselect("Products to merge", skus, key="datasets_products_merge_skus")
        keep = st.selectbox("Keep (its fields win; the others are deleted)", chosen or [""],
                            key="datasets_products_merge_keep")
        sure = st.checkbox("I understand the other products are deleted", key="datasets_products_merge_sure")
        if st.button("Merge", key="datasets_products_merge", disabled=len(chosen) < 2 or not sure):
            try:
                kept = products.merge_products(_user(), keep, [s for s in chosen if s != keep])
            except Exception as exc:  # noqa: BLE001 - ProductError or the role check
                st.error(plain(exc))
            else:
                _flash(f"merged into {kept.sku}")
                st.session_state[K_OPEN] = kept.sku
                st.rerun()
