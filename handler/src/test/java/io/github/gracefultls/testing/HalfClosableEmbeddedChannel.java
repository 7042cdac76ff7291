package io.github.gracefultls.testing;

import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelOption;
import io.netty.channel.DefaultChannelConfig;
import io.netty.channel.embedded.EmbeddedChannel;

/**
 * An {@link EmbeddedChannel} whose config reports {@link ChannelOption#ALLOW_HALF_CLOSURE} as {@code true}, like a
 * socket channel set up for half-closure. It is still not a {@code DuplexChannel}: tests fire the
 * {@code ChannelInputShutdownEvent} a FIN would cause.
 */
public final class HalfClosableEmbeddedChannel extends EmbeddedChannel {

    private final ChannelConfig config = new DefaultChannelConfig(this) {
        @Override
        @SuppressWarnings("unchecked")
        public <T> T getOption(ChannelOption<T> option) {
            if (option == ChannelOption.ALLOW_HALF_CLOSURE) {
                return (T) Boolean.TRUE;
            }
            return super.getOption(option);
        }
    };

    @Override
    public ChannelConfig config() {
        // null while the superclass constructor runs, before this class's fields are set
        return config != null ? config : super.config();
    }
}
