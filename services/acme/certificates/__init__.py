"""The ACME service: certificates for DOMAINS from an ACME CA (Let's Encrypt by default), obtained
and renewed by certbot through the webroot nginx serves, installed where nginx picks them up."""
