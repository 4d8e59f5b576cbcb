"""``fmnist predict batch``: a whole file or folder through an exported model into Parquet.

The job is a reader, a runner and a writer. :mod:`~fmnist.batch.readers` recognises the input
(image folders, IDX, NPY, NPZ, Parquet) and hands out row ranges as
:class:`~fmnist.batch.inputs.InputChunk`; :mod:`~fmnist.batch.runner` predicts them with ONNX
Runtime, shard by shard, resumably; :mod:`~fmnist.batch.writer` writes each shard and the job
manifest atomically and combines the shards into the output file. :mod:`~fmnist.batch.cli` is the
command. Nothing here imports torch or the serving app.
"""
