"""The lazy graph of one flow run: task calls recorded as `Call`s, handed out as `TaskFuture`s.

Calling a task inside a flow appends a `Call` (one task call, or one `.map` over N items) to the
run's `RunGraph` and returns futures; nothing runs until the engine takes the pending calls and
submits them as one wave. Keys are `(f"{slug}-{run_token}", index)` with `index` counting the
calls of that task in the run, so they are deterministic for a deterministic flow body and never
collide between runs. A future can only point at a call made earlier, so the graph is acyclic by
construction; futures of another run are refused (`cycles.py` refuses the one way round that:
a container changed after the call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from dagflow.core.keys import Key, key_name, key_text, logical_of
from dagflow.core.walk import is_container, leaves
from dagflow.errors import DefinitionError, FutureMisuse

if TYPE_CHECKING:
    from dagflow.core.options import TaskOptions
    from dagflow.core.states import StateType

R = TypeVar("R")


class Task(Protocol):
    """What the graph needs of a task (a `TaskDefinition` is one)."""

    @property
    def name(self) -> str: ...

    fn: Callable[..., Any]
    slug: str
    options: TaskOptions


class Resolver(Protocol):
    """What a future needs from the run that made it (the engine's flow runner)."""

    run_id: str

    def resolve(self, future: TaskFuture[Any], timeout: float | None) -> Any: ...

    def wait_for_future(self, future: TaskFuture[Any], timeout: float | None) -> None: ...

    def future_state(self, future: TaskFuture[Any]) -> StateType: ...


class TaskFuture(Generic[R]):
    """A node of a flow run's graph: a task call whose value is not asked for yet.

    Pass it to other tasks (inside lists and dicts too), or call `.result()` to run what is
    pending and get the value. Using it as a value (`if fut:`, `fut + 1`) is an error.
    """

    __slots__ = ("__weakref__", "_resolver", "call", "dask_future", "key")

    def __init__(self, resolver: Resolver, call: Call, key: Key) -> None:
        self._resolver = resolver
        self.call = call
        self.key = key
        self.dask_future: Any = None

    @property
    def run_id(self) -> str:
        return self._resolver.run_id

    @property
    def task_name(self) -> str:
        return self.call.task.name

    @property
    def logical_key(self) -> str:
        """`task[n]`: how the run's record names this call."""
        return logical_of(*self.key)

    def result(self, timeout: float | None = None) -> R:
        """Submit what is pending, wait for this task and return its value (or raise its error)."""
        return self._resolver.resolve(self, timeout)  # type: ignore[no-any-return,unused-ignore]

    def wait(self, timeout: float | None = None) -> None:
        """Submit what is pending and wait until this task has finished, without its value."""
        self._resolver.wait_for_future(self, timeout)

    @property
    def state(self) -> StateType:
        """The task run's latest known state."""
        return self._resolver.future_state(self)

    def __repr__(self) -> str:
        return f"TaskFuture({self.task_name!r}, key={key_text(self.key)!r})"

    def _misuse(self, *_: Any, **__: Any) -> Any:
        raise FutureMisuse(
            f"{self!r} is a future, not its value: call .result() to wait for the value "
            "(or pass the future itself to another task)"
        )

    __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = _misuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _misuse
    __truediv__ = __rtruediv__ = __floordiv__ = __mod__ = __pow__ = _misuse
    __lt__ = __le__ = __gt__ = __ge__ = __neg__ = __abs__ = _misuse
    __int__ = __float__ = __index__ = __round__ = _misuse

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise FutureMisuse(
            f"{self!r} has no attribute {name!r}: it is a future, not its value; "
            "call .result() first"
        )


@dataclass(frozen=True, slots=True)
class allow_failure:
    """Let a downstream task run even when this upstream failed; it then receives the error."""

    future: Any


@dataclass(frozen=True, slots=True)
class unmapped:
    """Pass the same value to every item of a `.map`, instead of mapping over it."""

    value: Any


@dataclass(slots=True)
class Refs:
    """The futures an argument structure refers to, split by whether a failure may pass."""

    hard: dict[Key, TaskFuture[Any]] = field(default_factory=dict)
    soft: dict[Key, TaskFuture[Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.hard or self.soft)

    def merge(self, other: Refs) -> None:
        self.hard.update(other.hard)
        self.soft.update(other.soft)


def collect_refs(value: Any, run_id: str, refs: Refs, soft: bool = False) -> None:
    """Find every future inside `value` (see `walk.py`), checking that it is of this run."""
    for leaf in leaves(value):
        kind = type(leaf)
        if kind is TaskFuture:
            if leaf.run_id != run_id:
                raise FutureMisuse(
                    f"{leaf!r} belongs to flow run {leaf.run_id}, not to this run ({run_id}); "
                    "pass its .result() instead"
                )
            (refs.soft if soft else refs.hard)[leaf.key] = leaf
        elif kind is allow_failure:
            collect_refs(leaf.future, run_id, refs, soft=True)
        elif kind is unmapped:
            collect_refs(leaf.value, run_id, refs, soft)


@dataclass(frozen=True, slots=True)
class Column:
    """A mapped argument: one value per item; `refs[i]` holds the futures inside item i."""

    values: list[Any]
    refs: list[Refs] | None


@dataclass(slots=True)
class Call:
    """One call of a task in a flow body: a single call (`count == 1`, not `mapped`) or a map.

    For a single call `args`/`kwargs` are the values as given (futures inside). For a map each
    argument is either a `Column` (mapped) or a plain value shared by every item.
    """

    task: Task
    name: str
    start: int
    count: int
    mapped: bool
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    refs: Refs
    futures: list[TaskFuture[Any]] = field(default_factory=list)
    seq: int = 0  # the call's place in the flow body: a call can only depend on earlier ones

    def iter_keys(self) -> Iterator[Key]:
        return ((self.name, i) for i in range(self.start, self.start + self.count))

    def soft_keys(self) -> Iterator[Key]:
        """The keys this call passes on through `allow_failure` (whole or per item): their
        failures are handled, so they do not fail the run."""
        yield from self.refs.soft
        for col in (*self.args, *self.kwargs.values()):
            if type(col) is Column and col.refs is not None:
                for refs in col.refs:
                    yield from refs.soft

    def part(self, i: int, j: int) -> Call:
        """Items `i .. j - 1` (0-based within this map) as a call of their own, with the same
        key name and seq: how an adaptive map submits a few probe items before the rest."""
        if not self.mapped:
            raise ValueError("only a map can be cut into parts")

        def cut(value: Any) -> Any:
            if type(value) is not Column:
                return value
            refs = value.refs[i:j] if value.refs is not None else None
            return Column(value.values[i:j], refs)

        return Call(
            self.task,
            self.name,
            self.start + i,
            j - i,
            True,
            tuple(cut(a) for a in self.args),
            {k: cut(v) for k, v in self.kwargs.items()},
            self.refs,
            self.futures[i:j],
            self.seq,
        )

    def item_refs(self, i: int) -> Refs:
        """The futures item `i` (0-based within the call) depends on."""
        if not self.mapped:
            return self.refs
        out = Refs(dict(self.refs.hard), dict(self.refs.soft))
        for col in (*self.args, *self.kwargs.values()):
            if type(col) is Column and col.refs is not None:
                out.merge(col.refs[i])
        return out


class RunGraph:
    """The calls of one flow run, and which of them are not submitted yet."""

    def __init__(self, resolver: Resolver, run_token: str) -> None:
        self.resolver = resolver
        self.run_id = resolver.run_id
        self.run_token = run_token
        self.pending: list[Call] = []
        self._counters: dict[str, int] = {}
        self._seq = 0

    def _new_call(
        self,
        task: Task,
        count: int,
        mapped: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        refs: Refs,
    ) -> Call:
        slug = task.slug
        start = self._counters.get(slug, 0)
        self._counters[slug] = start + count
        name = key_name(slug, self.run_token)
        self._seq += 1
        call = Call(task, name, start, count, mapped, args, kwargs, refs, seq=self._seq)
        call.futures = [TaskFuture(self.resolver, call, key) for key in call.iter_keys()]
        self.pending.append(call)
        return call

    def add_call(
        self,
        task: Task,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any] = (),
    ) -> TaskFuture[Any]:
        refs = Refs()
        collect_refs(args, self.run_id, refs)
        collect_refs(kwargs, self.run_id, refs)
        _add_wait_for(wait_for, self.run_id, refs)
        return self._new_call(task, 1, False, args, kwargs, refs).futures[0]

    def add_map(
        self,
        task: Task,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any] = (),
    ) -> list[TaskFuture[Any]]:
        shared = Refs()
        _add_wait_for(wait_for, self.run_id, shared)
        lengths: dict[str, int] = {}
        new_args = tuple(
            self._column(f"argument {i}", a, shared, lengths) for i, a in enumerate(args)
        )
        new_kwargs = {
            k: self._column(f"argument {k!r}", v, shared, lengths) for k, v in kwargs.items()
        }
        count = map_length(task.name, lengths)
        return self._new_call(task, count, True, new_args, new_kwargs, shared).futures

    def _column(self, where: str, value: Any, shared: Refs, lengths: dict[str, int]) -> Any:
        """A mapped argument as a `Column`; a constant (see `mapped_values`) as it is."""
        if type(value) is TaskFuture:
            # Mapping over one future maps over its value: wait for it (dynamic fan-out).
            value = value.result()
        values = mapped_values(value)
        if values is None:
            collect_refs(value, self.run_id, shared)
            return value.value if type(value) is unmapped else value
        lengths[where] = len(values)
        item_refs: list[Refs] | None = None
        for i, item in enumerate(values):
            if type(item) is TaskFuture or type(item) is allow_failure or holds_futures(item):
                refs = Refs()
                collect_refs(item, self.run_id, refs)
                if refs:
                    if item_refs is None:
                        item_refs = [_NO_REFS] * len(values)
                    item_refs[i] = refs
        return Column(values, item_refs)

    def take_pending(self) -> list[Call]:
        """The calls not submitted yet, in call order; they count as submitted from now on."""
        pending, self.pending = self.pending, []
        return pending


_NO_REFS = Refs()
_PASSED_WHOLE = (str, bytes, bytearray, dict)


def mapped_values(value: Any) -> list[Any] | None:
    """The items `.map` maps over for an argument, or None for one passed whole to every item.

    The same rule inside a flow and outside: `unmapped(x)`, strings, bytes, dicts and values that
    are not iterable are passed whole; `allow_failure(xs)` maps over `xs`, each item allowed to
    have failed; any other iterable is mapped over.
    """
    kind = type(value)
    if kind is unmapped or kind is TaskFuture or isinstance(value, _PASSED_WHOLE):
        return None
    if kind is allow_failure:
        inner = mapped_values(value.future)
        return None if inner is None else [allow_failure(item) for item in inner]
    if not _iterable(value):
        return None
    return list(value)


def map_length(task_name: str, lengths: dict[str, int]) -> int:
    """The number of items of a `.map` whose mapped arguments have `lengths`; refuses none or
    unequal ones, naming the arguments."""
    if not lengths:
        raise DefinitionError(
            f"task {task_name!r}: .map() needs at least one iterable argument to map over (a "
            "list, tuple, range, generator, ...); strings, bytes, dicts, unmapped() values and "
            "values that are not iterable are passed whole to every item"
        )
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise DefinitionError(f"task {task_name!r}: .map() iterables differ in length ({sizes})")
    return next(iter(lengths.values()))


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def holds_futures(value: Any) -> bool:
    """Whether `value` is a container that may hold futures (or an `unmapped` one)."""
    return is_container(value) or type(value) is unmapped


def _add_wait_for(wait_for: Iterable[Any], run_id: str, refs: Refs) -> None:
    if wait_for is None:
        return
    if type(wait_for) is TaskFuture or not _iterable(wait_for):
        wait_for = [wait_for]
    for item in wait_for:
        if type(item) not in (TaskFuture, allow_failure) and not holds_futures(item):
            raise DefinitionError(
                f"wait_for takes task futures, got {type(item).__name__}: {item!r}"
            )
        collect_refs(item, run_id, refs)


def futures_in(value: Any) -> Iterator[TaskFuture[Any]]:
    """Every future inside `value`, through `allow_failure` and `unmapped` too."""
    for leaf in leaves(value):
        kind = type(leaf)
        if kind is TaskFuture:
            yield leaf
        elif kind is allow_failure:
            yield from futures_in(leaf.future)
        elif kind is unmapped:
            yield from futures_in(leaf.value)
