"""`python -m pipeline.config [PATH]`: regenerate configs/schema.yaml from the typed sections."""

import sys
from pathlib import Path

from pipeline.config import SCHEMA_PATH, write_schema

write_schema(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH)
