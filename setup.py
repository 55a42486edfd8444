from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
for line in (here / "mmdet" / "__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)

setup(
    name="mmdet-vit",
    version=version["__version__"],
    description="Mask R-CNN / Cascade Mask R-CNN with ViTAEv2, VSA, ViTDet, Swin-Visformer and Swin backbones "
                "on current PyTorch, compatible with mmdetection 2.x configs and checkpoints",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mmdet", "mmdet.*"]),
    python_requires=">=3.10",
    install_requires=[l.strip() for l in (here / "requirements.txt").read_text().splitlines()
                      if l.strip() and not l.startswith("#")],
    extras_require={"tests": ["pytest>=7", "pytest-timeout"], "tensorboard": ["tensorboard"]},
    license="Apache-2.0",
)
