"""Real photos of clothes: class mappings, labelled folders, the experiment harness, domain
adaptation and abstention calibration.

``mapping`` and ``photos`` import only the standard library, pydantic, PyYAML and numpy;
``experiment``, ``adaptation`` and ``abstention`` pull in the model runtimes and are imported
by the commands that need them (``fmnist experiment ...``).
"""
