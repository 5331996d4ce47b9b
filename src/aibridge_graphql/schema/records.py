"""Which upstream record lists a document reads, so its pages are parsed without the others.

An interceptions page is mostly token usages, prompts and tool usages, a session page mostly
agentic actions (`upstream/projection.py`); a document that selects none of the fields built
from them has its pages parsed without them. The test is by field name over the whole document
(every operation and fragment, whatever the type or directive), which can only over-include; a
field that reads records under another name would fail loudly (the model lacks the attribute),
and `tests/integration/test_gateway_projection.py` runs every field of the schema both ways.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from graphql import FieldNode, FragmentDefinitionNode, OperationDefinitionNode, SelectionSetNode

from aibridge_graphql.schema.context import GatewayContext
from aibridge_graphql.schema.executor import PlanExecutor, per_operation
from aibridge_graphql.upstream.projection import ALL_RECORDS

# Fields built from one record list.
READS: Mapping[str, frozenset[str]] = {
    "tokenUsages": frozenset({"token_usages"}),
    "userPrompts": frozenset({"user_prompts"}),
    "toolUsages": frozenset({"tool_usages"}),
    "agenticActions": frozenset({"agentic_actions"}),
}
# Fields that aggregate over records (any type's `cost`, the usage report): all of them.
READS_ALL = frozenset({"cost", "usage"})


def unread_records(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]
) -> frozenset[str]:
    """The record lists no field of `operation` (or of any fragment beside it) is built from."""
    read: set[str] = set()
    pending: list[SelectionSetNode] = [operation.selection_set]
    pending.extend(fragment.selection_set for fragment in fragments)
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name in READS_ALL:
                    return frozenset()
                read.update(READS.get(name, ()))
            selection_set = getattr(selection, "selection_set", None)
            if selection_set is not None:
                pending.append(selection_set)
    return ALL_RECORDS - read


class ProjectingExecutor(PlanExecutor):
    """The plan executor that first tells the request's loaders which record lists to skip."""

    # Set per schema by `plan_executor_class`, like the plans: operation node id -> (node, set).
    unread: OrderedDict[int, tuple[OperationDefinitionNode, frozenset[str]]]

    def execute_operation(self, serially: bool | None = None) -> Any:
        context = self.context_value
        if isinstance(context, GatewayContext):
            context.loaders.skip_records = self._unread()
        return super().execute_operation(serially)

    def _unread(self) -> frozenset[str]:
        return per_operation(self.unread, self.operation, self._walk)

    def _walk(self) -> frozenset[str]:
        return unread_records(
            self.operation, [details.definition for details in self.fragments.values()]
        )
