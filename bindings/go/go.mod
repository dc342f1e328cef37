module transporturl

go 1.24
