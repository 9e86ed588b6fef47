"""Test-session environment for tests/ and the nbval run over notebooks/.

Set before anything imports huggingface_hub (which reads the offline flags at import):
nothing in the test suite may reach a model or dataset hub, and every run folder and
corpus cache goes to a fresh temporary project home, inherited by notebook kernels.
"""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["MPLBACKEND"] = "Agg"
os.environ["TQDM_DISABLE"] = "1"
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
if "DEEPFAKE_LIB_TEST_HOME" not in os.environ:
    os.environ["DEEPFAKE_LIB_TEST_HOME"] = tempfile.mkdtemp(prefix="deepfake_lib_test_")
os.environ["DEEPFAKE_LIB_HOME"] = os.environ["DEEPFAKE_LIB_TEST_HOME"]
os.environ["HF_DATASETS_CACHE"] = os.path.join(os.environ["DEEPFAKE_LIB_TEST_HOME"], "hf_datasets_cache")
