module fastproxy

go 1.22
