"""Rebuild the committed sample lake in data/lake (deterministic: same records every run).

Usage: python scripts/make_sample_lake.py [PATH]
"""

import sys

from catalog.sample import replace_sample_lake

if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "data/lake"
    replace_sample_lake(path)
    print(f"sample lake written to {path}")
