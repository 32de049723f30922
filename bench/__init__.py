"""ganserve benchmarks (numpy GEMM rate, Parzen evaluation speed)."""
