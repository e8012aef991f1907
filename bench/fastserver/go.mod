module modelrollout.bench/fastserver

go 1.21
