module github.com/sixcast/sixcast/bindings-go

go 1.23
