"""The "no cycle between files" contract of `make lint` finds cycles, and only cycles."""

import grimp

from tests.import_contracts import NoFileCycles, _cycles


def _graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported)
    return graph


def test_a_chain_is_no_cycle():
    graph = _graph(("app.views", "app.services"), ("app.services", "app.models"))
    assert _cycles(graph, set(graph.modules)) == []


def test_each_cycle_is_named_once_with_its_members():
    graph = _graph(
        ("app.a", "app.b"),
        ("app.b", "app.c"),
        ("app.c", "app.a"),
        ("app.c", "app.d"),
        ("other.x", "other.y"),
        ("other.y", "other.x"),
    )
    assert sorted(_cycles(graph, set(graph.modules))) == [
        ["app.a", "app.b", "app.c"],
        ["other.x", "other.y"],
    ]


def test_the_contract_is_broken_by_a_cycle_inside_its_packages_only():
    graph = _graph(("app.a", "app.b"), ("app.b", "app.a"), ("lib.x", "lib.y"), ("lib.y", "lib.x"))
    graph.add_module("app")
    graph.add_module("lib")
    for module in ("app.a", "app.b"):
        graph.add_module(module)
    contract = NoFileCycles(
        name="No cycle between files",
        session_options={"root_packages": ["app"]},
        contract_options={"packages": ["app"]},
    )
    check = contract.check(graph, verbose=False)
    assert not check.kept
    assert check.metadata["cycles"] == [["app.a", "app.b"]]
