"""TFMD schema vocabulary shared by the schema reader (inputs) and the pruned schema (outputs)."""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import schema_pb2

# Stages that TFX (tfx_bsl's tensor_representation_util) does not parse.
NOT_IN_PRODUCTION = (schema_pb2.PLANNED, schema_pb2.ALPHA, schema_pb2.DEPRECATED)
NOT_IN_PRODUCTION += (schema_pb2.DEBUG_ONLY, schema_pb2.DISABLED, schema_pb2.VALIDATION_DERIVED)
DTYPE_TO_TYPE = {"string": schema_pb2.BYTES, "int64": schema_pb2.INT, "float32": schema_pb2.FLOAT}


def in_production(feature: schema_pb2.Feature | schema_pb2.SparseFeature) -> bool:
    """Whether TFX parses ``feature``: not deprecated and not in a pre-production stage."""
    return not (feature.deprecated or feature.lifecycle_stage in NOT_IN_PRODUCTION)
