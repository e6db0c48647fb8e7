"""Inputs: the one input path of every shell, streaming readers, statistics, file formats.

Data far larger than memory is the normal case, so the streaming path builds no frame of
the data: ``FileStream`` yields bounded, deterministic ``tf.data`` batches from TFRecord,
Parquet or CSV shards, and ``compute_statistics`` runs one TFDV pass (Beam; DirectRunner
here, Dataflow with pipeline options) whose result builds the ``FeatureSet``.

Modules: ``prepare`` (``prepare()``: read -> split -> build candidates -> validate, for
the CLI and the Beam jobs), ``candidates`` (``build_features``, shared with TFX),
``streams`` (``prepare_streams``), ``readers``, ``statistics``, ``table_io`` (file
formats), ``source`` and ``tfxio_source`` (what ``select()`` consumes).
"""

from recsel.inputs.readers import FileStream, StreamOptions

__all__ = ["FileStream", "StreamOptions"]
