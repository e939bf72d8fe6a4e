"""`dvc plots show --html-template .dvc/plots/offline.html` gives a page that needs no network.

DVC fills the template through dvc_render (the library `dvc plots show` calls); the page must keep the plots,
carry vega, vega-lite and vega-embed inline and load nothing from elsewhere.
"""

import re

from dvc_render import VegaRenderer, render_html

from tokstudy import paths

TEMPLATE = paths.ROOT / ".dvc" / "plots" / "offline.html"
LIBRARIES = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}  # .dvc/plots/VENDORED.md


def _page(tmp_path, html_template) -> str:
    renderer = VegaRenderer([{"vocab_size": 8192, "nsl_code": 0.9, "rev": "workspace"},
                             {"vocab_size": 32000, "nsl_code": 0.8, "rev": "workspace"}],
                            "nsl_vs_vocab", template="linear", x="vocab_size", y="nsl_code")
    out = tmp_path / "index.html"
    render_html([renderer], out, html_template=html_template)
    return out.read_text(encoding="utf-8")


def _remote(page: str) -> list[str]:
    """Every attribute that would make a browser fetch something when the page loads (inline scripts' code is
    left out: the HTML parser fetches nothing it names)."""
    page = re.sub(r"(<script\b[^>]*>)[\s\S]*?(</script>)", r"\1\2", page)
    return re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?([^\"' >]+)", page)


def test_offline_page_has_the_plot_and_the_libraries_inline_and_no_remote_script(tmp_path):
    page = _page(tmp_path, TEMPLATE)
    assert _remote(page) == []
    assert "cdn.jsdelivr" not in page
    assert page.count("vegaEmbed('#") == 1 and '"nsl_code"' in page  # the plot's div and its data are there
    for name, version in LIBRARIES.items():
        assert f"<!-- {name} {version}:" in page
    for umd_global in (".vega={}", ".vegaLite={}", ".vegaEmbed="):  # each bundle's code, not just its comment
        assert umd_global in page


def test_dvc_default_page_loads_from_a_cdn(tmp_path):
    """The control: without the template DVC's page fetches its scripts, so the check above can fail."""
    page = _page(tmp_path, None)
    remote = _remote(page)
    assert len(remote) == 3 and all(u.startswith("https://cdn.jsdelivr.net/npm/vega") for u in remote)


def test_template_keeps_dvc_placeholders_and_drops_the_scripts_one():
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count("{plot_divs}") == 1 and "{refresh_tag}" in text
    assert "{scripts}" not in text  # where DVC would put its CDN tags
    for licence in ("LICENSE-vega", "LICENSE-vega-lite", "LICENSE-vega-embed", "VENDORED.md"):
        assert (TEMPLATE.parent / licence).is_file()
