// graphql-schema-linter configuration for the gateway's schema.graphql (run by
// tests/frontend/test_schema_lint.py). Why these rules:
//
// Enabled — what a frontend developer relies on when reading the schema in GraphiQL or an IDE:
//   - every type, field, argument, input field and enum value has a description, capitalized;
//   - deprecations say why;
//   - naming: types PascalCase, fields and input fields camelCase, enum values ALL_CAPS;
//   - no type is defined without being used;
//   - the Relay cursor connections spec: `*Connection` types have `edges`/`pageInfo`,
//     connection fields take `first`/`after` (and/or `last`/`before`), `PageInfo` is complete —
//     Relay's `@connection` and pagination fragments depend on exactly that shape.
//
// Disabled — the four `*-sorted-alphabetically` rules: field order is deliberate (`id` first,
// then the REST API's order, related fields together) and GraphiQL's docs show it as written.
//
// Ignored members — only the Apollo Federation 2 additions Strawberry generates (`_entities`,
// `_service`, `_Any`, `_Entity`, `_Service`): their names are fixed by the federation spec
// (gateways query them by name) so they cannot be camel-cased or capitalized, and Strawberry
// emits them without descriptions. Our own types get no exemption.
//
// schema/federation-directives.graphql is linted with schema.graphql: Strawberry prints
// `@link`/`@key` usages but not their definitions, which gateways supply; without them the SDL
// is not a valid schema on its own.
module.exports = {
  rules: [
    'arguments-have-descriptions',
    'defined-types-are-used',
    'deprecations-have-a-reason',
    'descriptions-are-capitalized',
    'enum-values-all-caps',
    'enum-values-have-descriptions',
    'fields-are-camel-cased',
    'fields-have-descriptions',
    'input-object-values-are-camel-cased',
    'input-object-values-have-descriptions',
    'relay-connection-arguments-spec',
    'relay-connection-types-spec',
    'relay-page-info-spec',
    'types-are-capitalized',
    'types-have-descriptions',
  ],
  ignore: {
    'fields-are-camel-cased': ['Query._entities', 'Query._service'],
    'fields-have-descriptions': ['Query._entities', 'Query._service', '_Service'],
    'arguments-have-descriptions': ['Query._entities'],
    'types-are-capitalized': ['_Service'],
    'types-have-descriptions': ['_Any', '_Entity', '_Service'],
  },
};
