"""lakota: versioned columnar storage for numerical and time series.

```python
from lakota import Repo, Schema
repo = Repo("file:///tmp/demo")
clct = repo.create_collection(Schema(ts="timestamp*", value="float"), "weather")
(clct / "Paris").write({"ts": ["2021-01-01", "2021-01-02"], "value": [1.5, 2.5]})
(clct / "Paris").frame(start="2021-01-02")
```
"""

import logging

from .changelog import Changelog, Revision
from .collection import Collection
from .frame import Frame
from .pod import POD, CachePOD, FilePOD, MemPOD
from .repo import Repo
from .schema import Schema
from .series import KVSeries, Series

__version__ = "0.7.1"
__all__ = [
    "CachePOD",
    "Changelog",
    "Collection",
    "FilePOD",
    "Frame",
    "KVSeries",
    "MemPOD",
    "POD",
    "Repo",
    "Revision",
    "Schema",
    "Series",
    "__version__",
]

logging.getLogger("lakota").addHandler(logging.NullHandler())
