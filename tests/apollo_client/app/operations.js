// The operations of a small frontend "app": scanned by generate-persisted-query-manifest and
// sent by apq_client.mjs, as an Apollo Client web project would.
import { gql } from "@apollo/client";

export const MODELS_BY_PREFIX = gql`
  query ModelsByPrefix($prefix: String) {
    models(prefix: $prefix)
  }
`;
