import sys
from pathlib import Path

# Import the in-tree package (bindings/python/mixflow) without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
