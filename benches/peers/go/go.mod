module tubench

go 1.24

require transporturl v0.0.0

replace transporturl => ../../../bindings/go
