"""Test support code: fakes and helpers. Never imported by the product."""
