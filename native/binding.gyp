{
  "targets": [
    {
      "target_name": "sys_shim",
      "sources": ["sys_shim.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
