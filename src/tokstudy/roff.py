"""Man pages (roff source) to plain text: :func:`roff_to_text`."""

from __future__ import annotations

import re

_ROFF_NAMED = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "mi": "-", "bu": "\u2022", "aq": "'", "dq": '"',
    "lq": "\u201c", "rq": "\u201d", "oq": "\u2018", "cq": "\u2019", "co": "\u00a9", "rg": "\u00ae",
    "tm": "\u2122", "mu": "\u00d7", "di": "\u00f7", "de": "\u00b0", "+-": "\u00b1", "<=": "\u2264",
    ">=": "\u2265", "!=": "\u2260", "->": "\u2192", "<-": "\u2190", "ga": "`", "ha": "^", "ti": "~",
    "rs": "\\", "sl": "/", "ba": "|", "or": "|", "lh": "\u261c", "rh": "\u261e", "sc": "\u00a7",
    "ua": "\u2191", "da": "\u2193", "fo": "\u00ab", "fc": "\u00bb", "Fo": "\u00ab", "Fc": "\u00bb",
    "R": "\u00ae", "Tm": "\u2122",
}
# strings defined by the man/mdoc macros and pod2man preambles
_ROFF_STRINGS = {"lq": "\u201c", "rq": "\u201d", "R": "\u00ae", "Tm": "\u2122", "S": "", "Aq": "'",
                 "C`": '"', "C'": '"', "L\"": "\u201c", "R\"": "\u201d", "--": "-", "PI": "\u03c0"}

_ESCAPE = re.compile(
    r"""\\(?:
        (?P<comment>["#].*)                                  # \" comment to end of line
      | \((?P<named2>..)                                     # \(xx
      | \[(?P<named>[^\]]*)\]                                # \[name]
      | \*(?:\((?P<str2>..)|\[(?P<strn>[^\]]*)\]|(?P<str1>.)) # \*x \*(xx \*[name]
      | [fFn](?:\(..|\[[^\]]*\]|.)                           # font / number register
      | s[-+]?(?:\d\d?|\(\d\d|\[[^\]]*\])                    # size
      | [hvwoLlbDxXNHSRZ](?:'[^']*'|\[[^\]]*\]|\|[^|]*\|)?   # drawing, motions, widths
      | k.                                                   # mark
      | (?P<char>.)                                          # anything else
    )""",
    re.VERBOSE,
)
_CHAR_ESCAPES = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "t": "\t",
                 "&": "", "|": "", "^": "", "%": "", "c": "", "/": "", ",": "", ":": "",
                 "{": "", "}": "", "a": "", "d": "", "u": "", "r": "", "p": "", "z": "",
                 "'": "'", "`": "`", ".": ".", "!": "", "?": "", "j": "", "E": "\\"}

# requests whose arguments are text to keep, and how to join them
_TEXT_MACROS_SPACE = {"SH", "SS", "B", "I", "SM", "SB", "IP", "SY", "OP", "Nm", "Nd", "Sh", "Ss",
                      "Pp", "Dl", "Ar", "Fl", "Cm", "Xr", "It", "Op", "Fn", "Fa", "Ft", "Va",
                      "Ev", "Pa", "Dq", "Sq", "Ql", "Li", "Em", "Sy", "Ic", "Ad", "Er", "Ms", "Tn",
                      "Ux", "At", "Bx", "Ox", "Nx", "Fx", "Lk", "Mt", "No", "Ns", "Pq", "Aq", "Bq"}
_TEXT_MACROS_ALT = {"BR", "RB", "BI", "IB", "IR", "RI"}


def _unescape(line: str) -> str:
    def sub(m: re.Match) -> str:
        if m.group("comment") is not None:
            return ""
        name = m.group("named2") or m.group("named")
        if name is not None:
            return _ROFF_NAMED.get(name, "")
        s = m.group("str2") or m.group("strn") or m.group("str1")
        if s is not None:
            return _ROFF_STRINGS.get(s, "")
        c = m.group("char")
        if c is not None:
            return _CHAR_ESCAPES.get(c, c)
        return ""

    return _ESCAPE.sub(sub, line)


def _split_args(s: str) -> list[str]:
    args, cur, quoted, i = [], [], False, 0
    while i < len(s):
        c = s[i]
        if c == '"':
            if quoted and i + 1 < len(s) and s[i + 1] == '"':
                cur.append('"')
                i += 1
            else:
                quoted = not quoted
        elif c in " \t" and not quoted:
            if cur:
                args.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        args.append("".join(cur))
    return args


def roff_to_text(src: str) -> str:
    """Plain text of a man page: roff requests dropped, text-bearing macros kept.

    Deliberately simple (no macro expansion): headings, paragraphs, option
    lists and examples survive; definitions, conditionals, tables' format lines
    and font/size escapes go. A ``.so`` include-only page gives ``""``.
    """
    out: list[str] = []
    end_block: str | None = None
    in_table_spec = False
    src = re.sub(r"(?<!\\)\\\n", "", src)  # a trailing backslash joins the next line
    for raw in src.splitlines():
        if end_block is not None:
            if raw.strip().startswith(end_block):
                end_block = None
            continue
        if in_table_spec:
            if raw.rstrip().endswith("."):
                in_table_spec = False
            continue
        if raw.startswith((".", "'")):
            body = raw[1:].lstrip()
            if not body or body.startswith(('\\"', "\\#")):
                continue
            name, _, rest = body.partition(" ")
            name = name.strip()
            if name in ("de", "de1", "am", "ig"):
                end_block = ".."
                continue
            if name == "TS":
                in_table_spec = True
                continue
            if name in ("so", "mso"):
                continue
            if name in _TEXT_MACROS_SPACE or name in _TEXT_MACROS_ALT:
                args = [_unescape(a) for a in _split_args(rest)]
                if name == "IP":
                    args = args[:1]  # the tag; the rest is an indent
                joiner = "" if name in _TEXT_MACROS_ALT else " "
                text = joiner.join(args).strip()
                if name in ("SH", "SS", "Sh", "Ss"):
                    out.append("")
                if text:
                    out.append(text)
                continue
            if name in ("PP", "LP", "P", "sp", "TP", "Pp"):
                if out and out[-1] != "":
                    out.append("")
            continue  # any other request
        line = _unescape(raw)
        out.append(line.replace("\t", " ").rstrip())
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text + "\n" if text else ""
