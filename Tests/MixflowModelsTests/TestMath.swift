import Glibc

func Glibc_pow(_ a: Double, _ b: Double) -> Double { Glibc.pow(a, b) }
func cosD(_ x: Double) -> Double { Glibc.cos(x) }
func sinD(_ x: Double) -> Double { Glibc.sin(x) }
