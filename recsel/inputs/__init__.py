"""Inputs: streaming readers over file shards, and the statistics pass that describes them.

Data far larger than memory is the normal case, so nothing here builds a frame of the
data: ``FileStream`` yields bounded, deterministic ``tf.data`` batches from TFRecord,
Parquet or CSV shards, and ``compute_statistics`` runs one TFDV pass (Beam; DirectRunner
here, Dataflow with pipeline options) whose result builds the ``FeatureSet``.
"""

from recsel.inputs.readers import FileStream, StreamOptions

__all__ = ["FileStream", "StreamOptions"]
