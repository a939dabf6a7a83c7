{
  "targets": [
    {
      "target_name": "fleetkey_ecdsa",
      "sources": ["ecdsa_verify.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
