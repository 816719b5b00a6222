// Shared types of the CPU reference. Every ref function works on Float32Array or Float64Array
// (float64 for finite-difference checks), with the same name and argument order as its kernel.
export type Vec = Float32Array | Float64Array;
export type IVec = Uint32Array | Int32Array | number[];
