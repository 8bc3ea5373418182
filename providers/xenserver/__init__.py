"""The XenServer / XCP-ng driver, over XAPI's XML-RPC with the official ``xenapi`` client."""
