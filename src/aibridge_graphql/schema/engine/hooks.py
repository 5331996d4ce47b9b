"""Strawberry's extension runner, with each extension class's hooks looked up once.

For every stage of every request Strawberry inspects each extension's hook (generator or not)
and wraps it with `contextlib.contextmanager`, which copies the function's metadata each time:
with eight extensions that was a sixth of the CPU of a `{ models }` request. Here the wrapping is
done once per extension class and stage; each request only binds it to its extension objects.
The hooks run exactly as Strawberry runs them, in the same order.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from aibridge_graphql.schema.engine.compat import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    SchemaExtensionsRunner,
    ValidationContextManager,
    WrappedHook,
)

# What a class's hook is: a context-manager factory and whether it is async; None when the class
# does not override the hook; "strawberry" for a plain callable, left to Strawberry's wrapping.
_Found = tuple[Callable[..., Any], bool] | str | None


class HookCache:
    """Per schema: each extension class's hook for each stage, wrapped once."""

    def __init__(self) -> None:
        self._found: dict[tuple[type[SchemaExtension], str], _Found] = {}

    def find(self, extension_class: type[SchemaExtension], name: str) -> _Found:
        """The wrapped hook `name` of `extension_class` (see `_Found`)."""
        key = (extension_class, name)
        if key not in self._found:
            self._found[key] = _wrapped(getattr(extension_class, name), name)
        return self._found[key]


def _wrapped(hook: Any, name: str) -> _Found:
    if hook is getattr(SchemaExtension, name):
        return None
    if inspect.isgeneratorfunction(hook):
        return contextlib.contextmanager(hook), False
    if inspect.isasyncgenfunction(hook):
        return contextlib.asynccontextmanager(hook), True
    return "strawberry"


class _CachedHooks(ExtensionContextManagerBase):
    def __init__(self, extensions: list[SchemaExtension], cache: HookCache) -> None:
        self._cache = cache  # before the base class looks the hooks up
        super().__init__(extensions)

    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        found = self._cache.find(type(extension), self.HOOK_NAME)
        if found is None:
            return None
        if isinstance(found, str):
            return super().get_hook(extension)
        factory, is_async = found
        return WrappedHook(extension, functools.partial(factory, extension), is_async)


class _Operation(_CachedHooks, OperationContextManager):
    pass


class _Validation(_CachedHooks, ValidationContextManager):
    pass


class _Parsing(_CachedHooks, ParsingContextManager):
    pass


class _Executing(_CachedHooks, ExecutingContextManager):
    pass


class CachedHooksRunner(SchemaExtensionsRunner):
    """`SchemaExtensionsRunner` whose stages find their hooks through a `HookCache`."""

    def __init__(
        self,
        execution_context: ExecutionContext,
        extensions: list[SchemaExtension],
        *,
        cache: HookCache,
    ) -> None:
        super().__init__(execution_context, extensions)
        self._cache = cache

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions, self._cache)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions, self._cache)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions, self._cache)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions, self._cache)
