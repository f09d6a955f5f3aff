"""The project's own import-linter contract: no cycle between files (`make lint` checks it).

`acyclic_siblings` would also refuse two sub-packages that import each other through different
files (accounts.twofactor and accounts.passkeys do, each building on the other's models); this
contract refuses exactly what makes module loading order-dependent: a file that, through its
imports, comes back to itself.
"""

from __future__ import annotations

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _cycles(graph, modules: set[str]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        # Iterative depth-first search: (module, iterator over what it imports).
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            step = next(imported, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = counter
                    counter += 1
                    stack.append(step)
                    on_stack.add(step)
                    targets = graph.find_modules_directly_imported_by(step) & modules
                    work.append((step, iter(sorted(targets))))
                elif step in on_stack:
                    low[module] = min(low[module], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


class NoFileCycles(Contract):
    """No module of `packages` reaches itself again through the modules it imports."""

    type_name = "no_file_cycles"
    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        modules = {
            module
            for package in self.packages  # type: ignore[attr-defined]
            for module in graph.find_descendants(package) | {package}
        }
        cycles = _cycles(graph, modules)
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles, "graph": graph})

    def render_broken_contract(self, check: ContractCheck) -> None:
        graph = check.metadata["graph"]
        for cycle in check.metadata["cycles"]:
            output.print_error(f"These modules import each other: {', '.join(cycle)}")
            members = set(cycle)
            for module in cycle:
                for imported in sorted(graph.find_modules_directly_imported_by(module) & members):
                    lines = graph.get_import_details(importer=module, imported=imported)
                    where = ", ".join(f"l.{detail['line_number']}" for detail in lines)
                    output.print(f"- {module} -> {imported} ({where})")
            output.new_line()
