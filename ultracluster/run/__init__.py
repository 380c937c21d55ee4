"""The runtime: really train one model across sites with torch.distributed.

The only package that imports torch. It never imports `ultracluster.simulate`: a measurement
must not be shaped by a prediction.
"""
