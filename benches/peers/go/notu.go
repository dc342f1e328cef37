//go:build !tubinding

package main

func tuBackend(kind, workload string, port int, ca string, n int) backend {
	unsupported("built without the transporturl binding (-tags tubinding)")
	return nil
}
