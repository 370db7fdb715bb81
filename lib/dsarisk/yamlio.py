"""Reading input files: the one place every YAML and CSV input is read from disk.

An input file is a regular file of at most :data:`MAX_BYTES` (``/dev/zero`` or a FIFO would
read forever), UTF-8 text (a bad byte is named with its line), and YAML without duplicate
keys (YAML keeps the last value silently) or aliases that expand beyond
:data:`MAX_NODES` nodes (an alias bomb costs nothing to parse and hours to walk).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from .exceptions import InputError

MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_DEPTH = 100

# libyaml parses our files about ten times faster than the pure-Python loader, and every
# notebook kernel reads a whole year of them
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(yaml.YAMLError):
    """A YAML document that parses but is refused before it is built."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand past MAX_NODES nodes or MAX_DEPTH levels, or
    that refers to itself; linear in the distinct nodes (each collection is sized once)."""
    sized: dict[int, tuple[int, int]] = {}  # collection node -> (values once expanded, depth)
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key, children = id(node), _children(node)
        if closing:
            open_nodes.discard(key)
            size, depth = 1, 1
            for child in children:
                child_size, child_depth = sized.get(id(child), (1, 1))  # a scalar counts 1
                size, depth = size + child_size, max(depth, child_depth + 1)
            if size > MAX_NODES:
                raise _Refused(f"aliases expand to more than {MAX_NODES:,} values", node.start_mark)
            if depth > MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep", node.start_mark)
            sized[key] = (size, depth)
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in children:
            if isinstance(child, yaml.ScalarNode) or id(child) in sized:
                continue
            if id(child) in open_nodes:
                raise _Refused("an alias refers to a node that contains it", child.start_mark)
            stack.append((child, False))


class _InputLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, refusing duplicate keys and runaway aliases."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys may be overridden: that is what a merge is for
            # a text key as it is written (building every key twice would cost a third more);
            # others built, so that yes and true, or 0x10 and 16, are one key
            key = (key_node.value if key_node.tag == "tag:yaml.org,2002:str"
                   else self.construct_object(key_node, deep=True))
            try:
                if key in seen:
                    raise _Refused(f"duplicate key '{key}' (first given at line {seen[key]})", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
            except TypeError:
                continue  # an unhashable key: the base constructor says so
        return super().construct_mapping(node, deep=deep)


def read_text(path: str | Path, error: type[InputError] = InputError, **where: str) -> str:
    """The UTF-8 text of a regular file of at most MAX_BYTES bytes, else ``error``."""
    path, max_bytes = Path(path), MAX_BYTES
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error("file not found", file=path, **where) from None
    except OSError as exc:
        raise error(f"cannot read file ({exc.strerror})", file=path, **where) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise error("not a regular file", file=path, **where)
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"cannot read file ({exc.strerror})", file=path, **where) from None
    if len(data) > max_bytes:
        raise error(f"file is larger than {max_bytes:,} bytes", file=path, **where)
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (Excel's "CSV UTF-8") is not text
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} (save the file as UTF-8)",
                    file=path, **where) from None


def read_yaml(path: str | Path, error: type[InputError] = InputError, **where: str) -> Any:
    """Read a YAML input file, turning every problem into one ``error`` line."""
    text = read_text(path, error, **where)
    try:
        return yaml.load(text, Loader=_InputLoader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"malformed YAML{position}: {problem}", file=path, **where) from None
    except RecursionError:
        raise error(f"malformed YAML: nested more than {MAX_DEPTH} levels deep", file=path, **where) from None
