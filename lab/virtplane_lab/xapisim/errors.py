"""XAPI's failure: an error code and its parameters, sent as ``{Status: Failure, ErrorDescription: [code, ...]}``.

Codes and parameter lists are those of the XenAPI reference's error list (ocaml/idl/datamodel_errors.ml and
ocaml/xapi-consts/api_errors.ml in xapi-project/xen-api). Where XAPI raises the code with a free-text parameter
whose wording the reference does not give, the text here is the simulator's own.
"""

from __future__ import annotations


class XapiError(Exception):
    def __init__(self, code: str, *params: object) -> None:
        super().__init__(code, *params)
        self.code = code
        self.params = [str(param) for param in params]

    def description(self) -> list[str]:
        return [self.code, *self.params]
