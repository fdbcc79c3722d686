"""C14N oracle for tests/oracles/c14n_lxml.rs: libxml2's canonicalizer through lxml.

Usage: lxml_c14n.py CASES.json RESULTS.txt

CASES.json is a list of {"doc": str, "apex": int, "exclude": int, "comments": bool,
"inclusive": bool, "prefixes": [str]}. "apex" and "exclude" index the document's elements in document
order (-1: the whole document / nothing excluded). RESULTS.txt gets one line per case:
"OK <hex of the canonical bytes>" or "ERR <reason>".

Exits with status 3 if lxml cannot be imported, so the Rust test can say so clearly.
"""

import json
import sys

try:
    from lxml import etree
except ImportError as exc:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(f"lxml is not importable: {exc}\n")
    sys.exit(3)


def remove_keeping_tail(element):
    """The enveloped-signature transform: drop the subtree, keep the text after it."""
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
        element.tail = None
    parent.remove(element)


PARSER = etree.XMLParser(resolve_entities=False, remove_blank_text=False, no_network=True)

# lxml passes libxml2 only the inclusive prefixes already interned in the parser's
# dictionary, which lxml shares between documents of one thread. "" (libxml2's name for
# #default) is interned only by a document that says xmlns="", so parse one first.
etree.fromstring(b'<prime xmlns=""/>', PARSER)


def canonicalize(case):
    root = etree.fromstring(case["doc"].encode("utf-8"), PARSER)
    elements = list(root.iter(etree.Element))
    apex = root.getroottree() if case["apex"] < 0 else elements[case["apex"]]
    if case["exclude"] >= 0:
        remove_keeping_tail(elements[case["exclude"]])
    # lxml drops prefixes it has not interned; "" is how libxml2 spells #default.
    prefixes = ["" if p == "#default" else p for p in case["prefixes"]]
    return etree.tostring(
        apex,
        method="c14n",
        exclusive=not case["inclusive"],
        with_comments=case["comments"],
        inclusive_ns_prefixes=prefixes or None,
    )


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    with open(sys.argv[2], "w", encoding="ascii") as out:
        for case in cases:
            try:
                out.write("OK " + canonicalize(case).hex() + "\n")
            except Exception as exc:  # noqa: BLE001 - every failure is a result
                out.write("ERR " + repr(exc).replace("\n", " ") + "\n")


if __name__ == "__main__":
    main()
