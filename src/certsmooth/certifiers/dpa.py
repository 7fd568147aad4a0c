"""Deep Partition Aggregation (Levine & Feizi, ICLR 2021): k base models on the partitions
of a content hash; certificate ρ̄, the inserted or deleted training samples that cannot
change the vote. Shared parts: :mod:`certsmooth.certifiers.count`."""

from certsmooth.certifiers.base import Certifier
from certsmooth.certifiers.count import runs, targets

CERTIFIER = Certifier("dpa", "DPA", ("count",), "poisons", runs, targets)
