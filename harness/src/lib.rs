pub const SKELETON: bool = true;
