/** The longest delay a JavaScript timer holds (2³¹ − 1 ms, 24.8 days): one given more fires at once. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;
