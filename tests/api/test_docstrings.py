"""numpydoc's own validator on every public callable: each parameter documented and
described, a Returns section where something is returned, no undocumented method."""

import importlib
import inspect
import warnings

import numpydoc.validate as numpydoc_validate  # a dev dependency

from .test_public_api import public_packages

#: parameter not documented, unknown parameter, parameter without description, no Returns
#: section, no docstring
CHECKED = {"PR01", "PR02", "PR07", "RT01", "GL08"}


def public_callables():
    seen, names = set(), []
    for package in public_packages():
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            names.append(f"{package}.{name}")
            if inspect.isclass(obj):
                names += [
                    f"{package}.{name}.{k}"
                    for k, v in vars(obj).items()
                    if not k.startswith("_") and inspect.isfunction(v)
                ]
    return names


def failures(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        errors = numpydoc_validate.validate(name)["errors"]
    return [f"{code}: {message}" for code, message in errors if code in CHECKED]


def test_every_public_callable_passes_numpydocs_checks():
    names = public_callables()
    assert len(names) > 150  # the walk found the API
    failing = {n: f for n in names if (f := failures(n))}
    assert not failing, "\n".join(f"{n}: {f}" for n, f in failing.items())
