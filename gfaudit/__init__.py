"""gfaudit: prove that a deployed classifier derives from yours, with signed GanFinger fingerprints.

The auditor half (this package) needs numpy, onnxruntime, safetensors and cryptography, never torch.
"""

__version__ = "0.1.0"
