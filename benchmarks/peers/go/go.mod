module goferpeers

go 1.19
