"""The deployed code will find its dependencies: the function's asset imports only what the layer ships,
the layer holds the pinned versions built for the function's runtime and architecture.

Everything is read from the synthesized cloud assembly (the asset directories CDK zips and uploads), and the
runtime and architecture come from the template, not from constants.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stacks.app_builder import PROJECT_ROOT
from tests.infrastructure.support import Synth, asset_dir, function

pytestmark = pytest.mark.xdist_group("infrastructure")

REQUIREMENTS = PROJECT_ROOT / "lambdas" / "requirements.txt"
# Lambda architecture -> the machine name in CPython's extension suffix and the ELF e_machine value.
MACHINES = {"arm64": ("aarch64", 183), "x86_64": ("x86_64", 62)}


def function_asset(synth: Synth) -> Path:
    function_id, fn = function(synth)
    assert fn["Metadata"]["aws:asset:property"] == "Code"
    return asset_dir(synth, function_id)


def layer_python(synth: Synth) -> Path:
    layer_id, layer = synth.only("AWS::Lambda::LayerVersion")
    assert layer["Metadata"]["aws:asset:property"] == "Content"
    # Lambda puts /opt/python on sys.path: the layer's packages must sit directly in python/.
    python = asset_dir(synth, layer_id) / "python"
    assert python.is_dir()
    return python


def target(synth: Synth) -> tuple[str, str, str]:
    """(major, minor, architecture) of the function, from the template."""
    _, fn = function(synth)
    match = re.fullmatch(r"python(\d+)\.(\d+)", fn["Properties"]["Runtime"])
    assert match, fn["Properties"]["Runtime"]
    (architecture,) = fn["Properties"].get("Architectures", ["x86_64"])
    return match.group(1), match.group(2), architecture


def python_files(root: Path) -> Iterator[Path]:
    yield from sorted(root.rglob("*.py"))


def module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path) -> set[str]:
    """Every absolute module name imported anywhere in the tree (relative imports resolved)."""
    found: set[str] = set()
    for path in python_files(root):
        package = module_of(path, root) if path.name == "__init__.py" else module_of(path, root).rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    found.add(".".join([*base, *([node.module] if node.module else [])]))
                else:
                    assert node.module is not None
                    found.add(node.module)
    return found


def own_packages(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if (p / "__init__.py").is_file()} | {p.stem for p in root.glob("*.py")}


def third_party_imports(root: Path) -> set[str]:
    tops = {name.split(".")[0] for name in imports(root)}
    return tops - set(sys.stdlib_module_names) - own_packages(root) - {"__future__"}


def layer_top_level(python: Path) -> set[str]:
    names = set()
    for entry in python.iterdir():
        if entry.is_dir() and not entry.name.endswith((".dist-info", ".egg-info")) and entry.name != "bin":
            names.add(entry.name)
        elif entry.suffix == ".py":
            names.add(entry.stem)
        elif entry.suffix == ".so":
            names.add(entry.name.split(".")[0])
    return names


def distributions(python: Path) -> dict[str, tuple[str, list[str]]]:
    """Canonical name -> (version, Requires-Dist lines) for every dist-info in the layer."""
    found: dict[str, tuple[str, list[str]]] = {}
    for dist_info in python.glob("*.dist-info"):
        metadata = Parser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
        name = canonicalize_name(metadata["Name"])
        directory_name, _, directory_version = dist_info.name.removesuffix(".dist-info").rpartition("-")
        assert canonicalize_name(directory_name) == name, dist_info
        assert directory_version == metadata["Version"], dist_info
        found[name] = (str(metadata["Version"]), list(metadata.get_all("Requires-Dist") or []))
    return found


def pins() -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()]
    requirements = [Requirement(line) for line in lines if line]
    return {canonicalize_name(r.name): r for r in requirements}


# --- The function's code ----------------------------------------------------------------------------------------


def test_function_asset_holds_the_handler_and_not_the_cli(synth: Synth) -> None:
    # Given the function's code asset in the cloud assembly
    root = function_asset(synth)
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    # Then it contains the handler module, defining the handler the template names ...
    _, fn = function(synth)
    module, _, attribute = fn["Properties"]["Handler"].rpartition(".")
    handler_file = root / (module.replace(".", "/") + ".py")
    assert handler_file.relative_to(root).as_posix() == "remediator/handler.py"
    tree = ast.parse(handler_file.read_text(encoding="utf-8"))
    assert attribute in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    # ... and not the CLI, the YAML policy loader, the requirements file or caches
    assert "remediator/cli.py" not in files
    assert "remediator/policy_files.py" not in files
    assert "requirements.txt" not in files
    assert [f for f in files if "__pycache__" in f or f.endswith(".pyc")] == []


def test_function_imports_of_its_own_package_resolve_within_the_asset(synth: Synth) -> None:
    # Given the function's code asset
    root = function_asset(synth)
    modules = {module_of(path, root) for path in python_files(root)}
    packages = own_packages(root)
    # When its imports of its own packages are collected
    internal = {name for name in imports(root) if name.split(".")[0] in packages}
    # Then each names a module in the asset, or an attribute of one (nothing excluded is imported)
    unresolved = {name for name in internal if name not in modules and name.rpartition(".")[0] not in modules}
    assert unresolved == set()
    assert "remediator.policy_files" not in internal
    assert "remediator.cli" not in internal


def test_every_third_party_import_of_the_function_is_in_the_layer(synth: Synth) -> None:
    # Given the function's code asset and the layer's python/ directory
    needed = third_party_imports(function_asset(synth))
    shipped = layer_top_level(layer_python(synth))
    # Then the function imports third-party code (so the check is not vacuous) ...
    assert {"aws_lambda_powertools", "pydantic"} <= needed
    # ... and the layer provides every top-level module it imports
    assert needed - shipped == set()


def test_pyyaml_is_not_required_by_the_function(synth: Synth) -> None:
    # Given the function's code asset
    needed = third_party_imports(function_asset(synth))
    # Then nothing in it imports yaml (only the CLI and the CDK app read YAML policy files)
    assert "yaml" not in needed


# --- The layer --------------------------------------------------------------------------------------------------


def test_layer_versions_equal_the_pins(synth: Synth) -> None:
    # Given the pins in lambdas/requirements.txt
    pinned = pins()
    assert all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in pinned.values())
    # When the layer's dist-info folders are read
    shipped = distributions(layer_python(synth))
    # Then each pinned distribution is in the layer at exactly the pinned version
    assert {name: shipped.get(name, ("absent",))[0] for name in pinned} == {
        name: next(iter(r.specifier)).version for name, r in pinned.items()
    }


def test_layer_satisfies_the_dependency_closure_for_the_functions_runtime(synth: Synth) -> None:
    # Given the function's runtime and architecture, as the marker environment of the Lambda sandbox
    major, minor, architecture = target(synth)
    environment = {
        "python_version": f"{major}.{minor}",
        "python_full_version": f"{major}.{minor}.0",
        "implementation_name": "cpython",
        "implementation_version": f"{major}.{minor}.0",
        "platform_python_implementation": "CPython",
        "platform_machine": MACHINES[architecture][0],
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
    }
    shipped = distributions(layer_python(synth))
    # When the pins (with their extras) are resolved through each distribution's Requires-Dist
    missing: list[str] = []
    queue = [(name, set(r.extras), str(r)) for name, r in pins().items()]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, extras, why = queue.pop()
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        if name not in shipped:
            missing.append(why)
            continue
        for line in shipped[name][1]:
            requirement = Requirement(line)
            marker: Marker | None = requirement.marker
            if marker is None or any(marker.evaluate({**environment, "extra": e}) for e in {"", *extras}):
                child = canonicalize_name(requirement.name)
                if child in shipped and not requirement.specifier.contains(shipped[child][0], prereleases=True):
                    missing.append(f"{requirement} (layer has {shipped[child][0]}, needed by {name})")
                queue.append((child, set(requirement.extras), f"{requirement} (needed by {name})"))
    # Then every requirement that applies on the Lambda runtime is in the layer, at a satisfying version
    assert missing == []
    # And the tracer extra was honoured (Powertools' Tracer needs the X-Ray SDK)
    assert "aws-xray-sdk" in shipped


def test_compiled_extensions_match_the_functions_runtime_and_architecture(synth: Synth) -> None:
    # Given the function's runtime and architecture from the template (e.g. python3.14 + arm64)
    major, minor, architecture = target(synth)
    machine, elf_machine = MACHINES[architecture]
    abi_tag = f"cpython-{major}{minor}-{machine}-linux-gnu"
    # When the layer's compiled extension modules are collected
    python = layer_python(synth)
    extensions = sorted(python.rglob("*.so"))
    assert any(p.parent.name == "pydantic_core" and p.name.startswith("_pydantic_core.") for p in extensions)
    # Then each carries that ABI tag (or the stable abi3 tag) ...
    wrong_tag = [
        p.relative_to(python).as_posix()
        for p in extensions
        if not (p.name.endswith(f".{abi_tag}.so") or p.name.endswith(".abi3.so"))
    ]
    assert wrong_tag == [], f"expected .{abi_tag}.so"
    # ... and is an ELF shared object for that machine
    for path in extensions:
        header = path.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", path
        assert int.from_bytes(header[18:20], "little") == elf_machine, path
