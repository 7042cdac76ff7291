module gracefultls/gopeer

go 1.19
